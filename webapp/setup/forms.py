"""Setup forms: the token, then the first admin account."""

from __future__ import annotations

from wtforms import PasswordField
from wtforms.validators import DataRequired, Length

from webapp.auth.forms import RegisterForm
from webapp.forms import PageForm
from webapp.setup.service import MAX_TOKEN_LENGTH


class SetupTokenForm(PageForm):
    token = PasswordField(
        "Setup token",
        description="In instance/setup-token on the server, or run `flask setup-token`.",
        validators=[
            DataRequired("Enter the setup token."),
            Length(max=MAX_TOKEN_LENGTH, message="That is not a setup token."),
        ],
    )


class AdminAccountForm(RegisterForm):
    """The first admin's email and password, with the same rules as any account."""
