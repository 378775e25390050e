"""JSON shape of a batch for the domain APIs (e.g. /api/v1/refund-batches/): snake_case, amounts in fen."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Batch, BatchLine
from ..selectors import (
    LINE_FILTERS,
    ORDER_ID_MAX,
    batch_error_summary,
    batch_message,
    line_message,
    line_outcome,
    line_result,
)


class BatchErrorSummarySerializer(serializers.Serializer):
    """Invalid lines of one error code in one column: how many, and the code's message in the user's language."""

    code = serializers.CharField()
    column = serializers.CharField(help_text="The column's key (empty for a line-level error without one).")
    count = serializers.IntegerField()
    message = serializers.CharField(help_text="The code's message; each line's own values shown as '…'.")


class BatchSerializer(serializers.ModelSerializer):
    merchant = serializers.CharField(source="merchant.code", read_only=True, allow_null=True, default=None)
    organisation = serializers.CharField(source="organisation.code", read_only=True)
    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True)
    file_name = serializers.CharField(source="original_name", read_only=True)
    progress = serializers.IntegerField(source="progress_percent", read_only=True, help_text="0–100.")
    error = serializers.SerializerMethodField(help_text="File-level problem: code and message in the user's language.")
    has_result_file = serializers.SerializerMethodField()
    error_summary = serializers.SerializerMethodField(
        help_text="Invalid lines per error code and column, most frequent first. Only on a single batch "
        "(GET /{id}/ and the actions' answers); null in lists, where it would cost a query per batch."
    )

    class Meta:
        model = Batch
        fields = [
            "id",
            "kind",
            "status",
            "organisation",
            "merchant",
            "uploaded_by",
            "file_name",
            "file_format",
            "size",
            "sha256",
            "total_lines",
            "valid_lines",
            "invalid_lines",
            "processed_lines",
            "succeeded_lines",
            "failed_lines",
            "total_amount",
            "valid_amount",
            "succeeded_amount",
            "progress",
            "error",
            "error_summary",
            "approval_id",
            "has_result_file",
            "created_at",
            "updated_at",
            "validated_at",
            "submitted_at",
            "approved_at",
            "processed_at",
        ]
        read_only_fields = fields

    def get_error(self, batch: Batch) -> dict | None:
        if not batch.error_code:
            return None
        return {"code": batch.error_code, "message": batch_message(batch), "params": batch.error_params}

    @extend_schema_field(BatchErrorSummarySerializer(many=True, allow_null=True))
    def get_error_summary(self, batch: Batch) -> list[dict] | None:
        if isinstance(self.parent, serializers.ListSerializer):
            return None
        return [
            {key: group[key] for key in ("code", "column", "count", "message")} for group in batch_error_summary(batch)
        ]

    def get_has_result_file(self, batch: Batch) -> bool:
        return bool(batch.result_name)


class BatchLineErrorSerializer(serializers.ModelSerializer):
    """One invalid line: number, column, code, message (user's language), params."""

    line = serializers.IntegerField(source="line_no")
    column = serializers.CharField(source="error_column")
    code = serializers.CharField(source="error_code")
    params = serializers.JSONField(source="error_params")
    message = serializers.SerializerMethodField()

    class Meta:
        model = BatchLine
        fields = ["line", "column", "code", "message", "params", "order_id"]

    def get_message(self, line: BatchLine) -> str:
        return line_message(line.batch, line)


class BatchUploadSerializer(serializers.Serializer):
    """Input of an upload endpoint: the multipart ``file`` (and, for an acquirer, ``merchant`` code)."""

    file = serializers.FileField()
    merchant = serializers.CharField(required=False, allow_blank=True)


class BatchLineQuerySerializer(serializers.Serializer):
    """The filters of a batch's lines (query parameters), the same as the batch's lines page."""

    status = serializers.ChoiceField(
        choices=[status.value for status in LINE_FILTERS],
        required=False,
        allow_blank=True,
        help_text="Only the lines of this status (``valid`` includes lines not yet checked); all when absent.",
    )
    order_id = serializers.CharField(
        required=False, allow_blank=True, max_length=ORDER_ID_MAX, help_text="Only the lines with this order ID."
    )


class BatchLineSerializer(serializers.ModelSerializer):
    """One line of a batch: number, order ID, amount in fen, status, the kind's error message (invalid
    line) or the gateway's answer (processed line), and when it last changed (UTC)."""

    line = serializers.IntegerField(source="line_no", read_only=True)
    amount = serializers.IntegerField(read_only=True, help_text="Fen.")
    status_label = serializers.CharField(
        source="get_status_display", read_only=True, help_text="In the user's language."
    )
    error_code = serializers.CharField(read_only=True, help_text="Empty unless the line is invalid.")
    error_column = serializers.CharField(read_only=True, help_text="The column at fault, when the error names one.")
    message = serializers.SerializerMethodField(
        help_text="An invalid line's error message in the user's language, else the gateway's respCode and respMsg."
    )
    result = serializers.SerializerMethodField(
        help_text="The gateway's answer for a processed line: respCode, respMsg, queryId, settleDate, traceNo, "
        "traceTime (those present)."
    )

    class Meta:
        model = BatchLine
        fields = [
            "line",
            "order_id",
            "amount",
            "status",
            "status_label",
            "error_code",
            "error_column",
            "message",
            "result",
            "updated_at",
        ]
        read_only_fields = fields

    def get_message(self, line: BatchLine) -> str:
        return line_outcome(self.context["batch"], line, self.context.get("kind"))

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_result(self, line: BatchLine) -> dict:
        return line_result(line)
