"""The role → permission matrix in code must equal the reviewed golden file (PCI DSS 7.2).

A change to ``portal.accounts.roles`` fails here until ``tests/accounts/role_matrix.json`` is
updated in the same change, so that every widening of access is visible in review.
"""

import json
from pathlib import Path

from portal.accounts.roles import ROLE_PERMISSIONS, Perm, Role, matrix_as_dict

GOLDEN = Path(__file__).with_name("role_matrix.json")


def test_matrix_equals_the_golden_file():
    # given the checked-in golden file
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    # when the matrix is rendered from code
    current = matrix_as_dict()
    # then they are identical, role by role
    assert sorted(current) == sorted(golden)
    for role in golden:
        assert current[role] == golden[role], f"role {role} differs from role_matrix.json"


def test_every_role_is_in_the_matrix_and_every_permission_is_named():
    # given every permission constant declared on Perm
    declared = {v for k, v in vars(Perm).items() if k.isupper()}
    # then every role has an entry, and no role grants an undeclared permission
    assert set(ROLE_PERMISSIONS) == set(Role.values)
    granted = set().union(*ROLE_PERMISSIONS.values())
    assert granted <= declared, granted - declared


def test_read_only_roles_grant_no_write_permission():
    # given the auditor is read-only (issue 2, section 2)
    writes = {p for p in matrix_as_dict()["auditor"] if p.split(".")[1] in {"manage", "create", "approve", "upload"}}
    # then it holds no write permission
    assert writes == set()
