"""Account forms."""

from __future__ import annotations

from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from webapp.forms import PageForm

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


def normalise_email(value: str | None) -> str | None:
    return value.strip().lower() if isinstance(value, str) else value


def printable(form: PageForm, field) -> None:
    """No control characters: none is part of an address, and PostgreSQL cannot look up a NUL."""
    if isinstance(field.data, str) and any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in field.data):
        raise ValidationError("This is not an email address.")


class RegisterForm(PageForm):
    email = EmailField(
        "Email",
        filters=[normalise_email],
        validators=[DataRequired("Enter your email address."), Email(), Length(max=254)],
    )
    password = PasswordField(
        "Password",
        validators=[
            DataRequired("Choose a password."),
            Length(
                min=MIN_PASSWORD_LENGTH, message=f"Use at least {MIN_PASSWORD_LENGTH} characters."
            ),
            Length(
                max=MAX_PASSWORD_LENGTH, message=f"Use at most {MAX_PASSWORD_LENGTH} characters."
            ),
        ],
    )
    confirm = PasswordField(
        "Confirm password",
        validators=[
            DataRequired("Type the password again."),
            EqualTo("password", "The passwords do not match."),
        ],
    )


class LoginForm(PageForm):
    email = EmailField(
        "Email",
        filters=[normalise_email],
        validators=[DataRequired("Enter your email address."), Length(max=254), printable],
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=MAX_PASSWORD_LENGTH)],
    )
    remember = BooleanField("Keep me signed in")


def _own_password(label: str, which: str) -> PasswordField:
    """The password the user has now, asked again ("your" or "your current")."""
    return PasswordField(
        label,
        validators=[
            DataRequired(f"Enter {which} password."),
            Length(max=MAX_PASSWORD_LENGTH, message=f"That is not {which} password."),
        ],
    )


class ConfirmPasswordForm(PageForm):
    password = _own_password("Your password", "your")


class PasswordChangeForm(PageForm):
    current = _own_password("Current password", "your current")
    password = RegisterForm.password
    confirm = RegisterForm.confirm
    # Ticked unless the user unticks it: a new password is most often a response to a
    # suspected compromise, and a token minted with the stolen password must end too.
    revoke_tokens = BooleanField(
        "Also revoke my access tokens",
        default=True,
        description="Scripts and services that use them stop working at once; create new "
        "tokens for them afterwards. Untick this only if no one else can have used your "
        "password.",
    )
