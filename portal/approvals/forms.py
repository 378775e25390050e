from django import forms
from django.utils.translation import gettext_lazy as _

from .choices import Decision


class DecisionForm(forms.Form):
    """A reviewer's decision on the current stage, quoting the content hash of what they saw."""

    decision = forms.ChoiceField(label=_("Decision"), choices=Decision.choices)
    reason = forms.CharField(
        label=_("Reason"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )
    seen_content_hash = forms.RegexField(regex=r"^[0-9a-f]{64}$", widget=forms.HiddenInput)
    stage_index = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    next = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)
