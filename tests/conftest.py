"""Fixtures: the tenant trio (merchant A admin and operator, merchant B admin) plus acquirer,
reviewer and auditor users, and clients signed in with both factors."""

import pytest
from django.test import Client

from .factories import AcquirerFactory, MerchantFactory, PlatformFactory, UserFactory, login_fully


@pytest.fixture
def platform(db):
    return PlatformFactory()


@pytest.fixture
def acquirer(db):
    return AcquirerFactory()


@pytest.fixture
def merchant_a(acquirer):
    return MerchantFactory(acquirer=acquirer)


@pytest.fixture
def merchant_b(db):
    # Under another acquirer: nothing of A's is visible to B's people, nor the other way.
    return MerchantFactory()


@pytest.fixture
def admin_a(merchant_a):
    return UserFactory(organisation=merchant_a, username="a.admin", roles=["merchant_admin"])


@pytest.fixture
def operator_a(merchant_a):
    return UserFactory(organisation=merchant_a, username="a.operator", roles=["merchant_operator"])


@pytest.fixture
def reviewer_a(merchant_a):
    return UserFactory(organisation=merchant_a, username="a.reviewer", roles=["merchant_reviewer"])


@pytest.fixture
def admin_b(merchant_b):
    return UserFactory(organisation=merchant_b, username="b.admin", roles=["merchant_admin"])


@pytest.fixture
def acquirer_admin(acquirer):
    return UserFactory(organisation=acquirer, username="acq.admin", roles=["acquirer_admin"])


@pytest.fixture
def acquirer_reviewer(acquirer):
    return UserFactory(organisation=acquirer, username="acq.reviewer", roles=["acquirer_reviewer"])


@pytest.fixture
def auditor(platform):
    return UserFactory(organisation=platform, username="plat.auditor", roles=["auditor"])


@pytest.fixture
def merchant_auditor(merchant_a):
    return UserFactory(organisation=merchant_a, username="a.auditor", roles=["auditor"])


@pytest.fixture
def platform_admin(platform):
    return UserFactory(organisation=platform, username="plat.admin", roles=["platform_admin"], is_staff=True)


@pytest.fixture
def client_for(db):
    """``client_for(user)`` → a Client signed in with both factors."""

    def make(user):
        client = Client()
        login_fully(client, user)
        return client

    return make
