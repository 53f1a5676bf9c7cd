"""Admin forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.validators import AnyOf


class FallbackForm(FlaskForm):
    """Turn users' fallback to a global key on or off."""

    enabled = HiddenField(validators=[AnyOf(["on", "off"])])
