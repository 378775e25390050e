"""SMS sending through a configurable backend (outbox, aliyun, http). Interface only here;
see ``service.py``."""

from .service import SmsDailyCapExceeded, SmsIpCapExceeded, sms_send

__all__ = ["SmsDailyCapExceeded", "SmsIpCapExceeded", "sms_send"]
