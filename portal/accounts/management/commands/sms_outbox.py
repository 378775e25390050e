"""``python manage.py sms_outbox --last N``: the newest SMS messages, newest first, one a line."""

from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal.accounts.models import SmsMessage
from portal.accounts.sms.backends import one_line


class Command(BaseCommand):
    help = "List the newest SMS messages (newest first): Beijing time, phone, status and text."

    def add_arguments(self, parser):
        parser.add_argument("--last", type=int, default=10, help="How many messages to list (default 10).")

    def handle(self, *args, last: int, **options):
        if last < 1:
            raise CommandError("--last must be at least 1.")
        zone = ZoneInfo(settings.BUSINESS_TIME_ZONE)
        for message in SmsMessage.objects.order_by("-created_at", "-id")[:last]:
            when = timezone.localtime(message.created_at, zone).strftime("%Y-%m-%d %H:%M:%S")
            self.stdout.write(f"{when} {message.phone} {message.status} {one_line(message.text)}")
