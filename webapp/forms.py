"""The base of every HTML form: it reads the posted form fields and nothing else."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict


class PageForm(FlaskForm):
    """A form of Keyhold's pages.

    Flask-WTF would also read uploaded files and a JSON body as the form's
    fields; a field then held a file or a number, and validators that expect
    text failed with a 500. A page's form is sent as form fields by the
    browser, so those are all it reads: anything else posted to it is a form
    with its fields missing, answered with the form's own messages.
    """

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            if formdata is None or isinstance(formdata, MultiDict):
                return formdata  # given by the caller: None (show stored values) or fields
            if form.is_submitted() and request.form:
                return request.form
            return None
