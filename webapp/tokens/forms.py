"""Forms of the /tokens page. The service owns the rules; these only collect input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wtforms import (
    BooleanField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Optional
from wtforms.widgets import CheckboxInput, ListWidget

from webapp.db_types import whole_number
from webapp.forms import PageForm
from webapp.tokens.policy import DEFAULT_SCOPES, RESOLVE_SCOPE, SCOPES, expiry_choices

NEVER = "never"
GRACE_CHOICES = (0, 1, 24, 72, 168)


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _days_label(days: int | None) -> str:
    return "Never" if days is None else f"{days} days"


def _whole_number(raw: str) -> Any:
    # Anything else goes on to the service as text, which refuses it with a message.
    number = whole_number(raw)
    return raw if number is None else number


class TokenForm(PageForm):
    name = StringField(
        "Name", validators=[Optional()], description="Where the token is used, e.g. nightly-report."
    )
    scopes = CheckboxesField(
        "Scopes",
        choices=[
            SelectChoice(s, f"{s}: {text}") for s, text in SCOPES.items() if s != RESOLVE_SCOPE
        ],
        default=list(DEFAULT_SCOPES),
        validate_choice=False,  # unknown scopes are refused by the service, with a message
    )
    allow_resolve = BooleanField(
        f"Allow {RESOLVE_SCOPE}: this token may read your stored keys in plaintext",
        description="Only for your own backend services that call providers themselves. "
        "Anyone holding the token can then read your keys.",
    )
    expires_in = SelectField("Expires after", validators=[Optional()], validate_choice=False)
    allowed_ips = TextAreaField(
        "Allowed addresses (optional)",
        description="One IPv4 or IPv6 address or CIDR range per line, e.g. 203.0.113.0/24. "
        "Leave empty to allow any address.",
    )

    def configure(self, config: Mapping[str, Any]) -> TokenForm:
        self.expires_in.choices = [
            SelectChoice(NEVER if d is None else str(d), _days_label(d))
            for d in expiry_choices(config)
        ]
        if not self.is_submitted():
            self.expires_in.data = str(config["TOKEN_DEFAULT_EXPIRY_DAYS"])
        return self

    def chosen_scopes(self) -> list[str]:
        chosen = [s for s in self.scopes.data or [] if s != RESOLVE_SCOPE]
        return chosen + [RESOLVE_SCOPE] if self.allow_resolve.data else chosen

    def chosen_expiry(self) -> Any:
        """Days as an int, None for never, or the raw text (refused by the service)."""
        raw = (self.expires_in.data or "").strip()
        if raw == NEVER:
            return None
        return _whole_number(raw)


class RotateForm(PageForm):
    grace_hours = SelectField("Keep the old token working for", validate_choice=False)

    def configure(self, config: Mapping[str, Any]) -> RotateForm:
        default = config["TOKEN_ROTATION_GRACE_HOURS"]
        hours = sorted(
            {h for h in GRACE_CHOICES if h <= config["TOKEN_MAX_GRACE_HOURS"]} | {default}
        )
        self.grace_hours.choices = [
            SelectChoice(str(h), "No grace: it stops now" if h == 0 else f"{h} hours")
            for h in hours
        ]
        if not self.is_submitted():
            self.grace_hours.data = str(default)
        return self

    def chosen_grace(self) -> Any:
        raw = (self.grace_hours.data or "").strip()
        return _whole_number(raw)


class RevokeForm(PageForm):
    """Nothing but the CSRF token."""
