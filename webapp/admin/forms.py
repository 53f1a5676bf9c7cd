"""Admin forms."""

from __future__ import annotations

from wtforms import HiddenField
from wtforms.validators import AnyOf

from webapp.forms import PageForm


class FallbackForm(PageForm):
    """Turn users' fallback to a global key on or off."""

    enabled = HiddenField(validators=[AnyOf(["on", "off"])])
