"""Why a submission or a decision was refused: one class per reason, with a ``code`` for the API
and a message in the user's language. ``status`` is the HTTP status the web and API layers answer."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class ApprovalError(Exception):
    code = "approval_error"
    status = 400
    default_message = _("The approval could not be recorded.")
    # Security-relevant refusals of a decision are audited (outcome "denied").
    audited = False

    def __init__(self, message=None, *, request=None):
        self.message = message or self.default_message
        self.request = request
        super().__init__(str(self.message))

    def __str__(self) -> str:
        return str(self.message)


class ApprovalNotFound(ApprovalError):
    code = "not_found"
    status = 404
    default_message = _("No such approval request.")


class AlreadyDecided(ApprovalError):
    code = "already_decided"
    status = 409
    default_message = _("This request has already been decided.")


class ApprovalExpired(ApprovalError):
    code = "expired"
    status = 409
    default_message = _("This request has expired: it was not decided in time. Ask for it to be submitted again.")


class OwnSubmission(ApprovalError):
    code = "own_submission"
    status = 403
    default_message = _("You submitted or edited this yourself: someone else must review it.")
    audited = True


class DecidedEarlierStage(ApprovalError):
    code = "already_decided_earlier_stage"
    status = 403
    default_message = _("You already decided an earlier stage of this request: someone else must decide this one.")
    audited = True


class WrongRole(ApprovalError):
    code = "wrong_role"
    status = 403
    default_message = _("This stage must be decided by a %(role)s of %(organisation)s.")
    audited = True


class StageNotOpen(ApprovalError):
    code = "stage_not_open"
    status = 409
    default_message = _("This stage cannot be decided yet: an earlier stage is still waiting.")


class StepUpRequired(ApprovalError):
    code = "step_up_required"
    status = 403
    default_message = _("Confirm with a second-factor code first (valid for 5 minutes).")
    audited = True


class ContentChanged(ApprovalError):
    code = "content_changed"
    status = 409
    default_message = _(
        "What you reviewed is not what was submitted: it has changed since. The request is void; "
        "it must be submitted again."
    )
    audited = True

    def __init__(self, message=None, *, request=None, void: bool = False):
        super().__init__(message, request=request)
        self.void = void


class ReasonRequired(ApprovalError):
    code = "reason_required"
    status = 400
    default_message = _("Give a reason for the rejection.")


class DuplicatePending(ApprovalError):
    code = "duplicate_pending"
    status = 409
    default_message = _("This is already waiting for review (request %(id)s, submitted %(when)s).")


class NotMaker(ApprovalError):
    code = "not_maker"
    status = 403
    default_message = _("Only the person who submitted a request can cancel it.")
