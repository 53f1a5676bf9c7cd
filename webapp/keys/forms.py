"""The add/replace form, built per provider from its catalogue entry."""

from __future__ import annotations

from collections.abc import Callable

from wtforms import DateField, Field, HiddenField, PasswordField, StringField, URLField
from wtforms.validators import Optional, StopValidation

from webapp.forms import PageForm
from webapp.providers.catalog import Provider

EXPIRY_HELP = (
    "Optional. The date you expect this key to stop working: Keyhold flags it from a week before."
)


def _expiry_field(*first: Callable[..., None]) -> DateField:
    # The range is checked by keys.expiry.parse_expiry, the same rule as the API's.
    return DateField("Expiry reminder", validators=[*first, Optional()], description=EXPIRY_HELP)


class KeyForm(PageForm):
    # Checked by the service (keys.inputs.clean_input), which owns the rules.
    api_key = PasswordField("API key", validators=[Optional()])


class UserKeyForm(KeyForm):
    """A user's own key has an expiry reminder; a global key does not."""

    expires_at = _expiry_field()


def _sent(form: PageForm, field: Field) -> None:
    """The field was in the form posted (empty or not): the page always sends it, and a
    post without it (a file or a JSON body in its place) must not remove the reminder."""
    if not field.raw_data:
        raise StopValidation("Enter a date, or leave the field empty to remove the reminder.")


class ExpiryForm(PageForm):
    """The reminder alone, for a key already stored; ``shown`` names (by fingerprint) the key
    the page showed, so that a reminder set from a page left open is not put on a key that
    replaced it meanwhile."""

    expires_at = _expiry_field(_sent)
    shown = HiddenField()


_form_classes: dict[tuple[str, type[KeyForm]], type[KeyForm]] = {}


def key_form_class(provider: Provider, base: type[KeyForm] = KeyForm) -> type[KeyForm]:
    if (provider.id, base) not in _form_classes:
        _form_classes[(provider.id, base)] = _build(provider, base)
    return _form_classes[(provider.id, base)]


def _build(provider: Provider, base: type[KeyForm]) -> type[KeyForm]:
    attrs = {}
    for spec in provider.extra_fields:
        field_type = URLField if spec.kind == "url" else StringField
        attrs[spec.name] = field_type(
            spec.label, description=spec.help, default=spec.default or None
        )
    return type(f"{provider.id.title()}{base.__name__}", (base,), attrs)


class ConfirmForm(PageForm):
    """A form with nothing but its CSRF token, for destructive buttons."""


class DeleteKeyForm(ConfirmForm):
    """Confirms the deletion of the key the page showed, named by its fingerprint (a post
    without the field, from a script rather than the page, deletes the key stored now)."""

    shown = HiddenField()
