"""The add/replace form, built per provider from its catalogue entry."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, URLField
from wtforms.validators import Optional

from webapp.providers.catalog import Provider


class KeyForm(FlaskForm):
    # Checked by the service (keys.service.clean_input), which owns the rules.
    api_key = PasswordField("API key", validators=[Optional()])


_form_classes: dict[str, type[KeyForm]] = {}


def key_form_class(provider: Provider) -> type[KeyForm]:
    if provider.id not in _form_classes:
        _form_classes[provider.id] = _build(provider)
    return _form_classes[provider.id]


def _build(provider: Provider) -> type[KeyForm]:
    attrs = {}
    for spec in provider.extra_fields:
        field_type = URLField if spec.kind == "url" else StringField
        attrs[spec.name] = field_type(
            spec.label, description=spec.help, default=spec.default or None
        )
    return type(f"{provider.id.title()}KeyForm", (KeyForm,), attrs)


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token, for destructive buttons."""
