"""Sign-in, second factor, sign-out, language switch. (Stubs: filled in by the auth work.)"""

from django.views.i18n import set_language as django_set_language

from portal.core.mixins import public_view


@public_view
def set_language(request):
    return django_set_language(request)


def lockout_response(request, credentials, *args, **kwargs):
    from django.http import HttpResponse

    return HttpResponse(status=403)
