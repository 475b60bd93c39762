"""HankoUser: a value read from verified claims, deeply frozen, hashable, and written as JSON."""

from __future__ import annotations

import copy
import json
import pickle
import time
import unittest
from typing import Any

import tornado.escape

from hanko_tornado import HankoUser


def hanko_claims(**extra: Any) -> dict[str, Any]:
    """Claims shaped as Hanko issues them."""
    return {
        "sub": "aaaaaaaa-0000-4000-8000-000000000021",
        "session_id": "5e551011-0000-4000-8000-000000000021",
        "iat": int(time.time()),
        "exp": int(time.time()) + 3600,
        "aud": ["localhost"],
        "amr": ["passkey", "mfa"],
        "email": {"address": "ada@example.com", "is_primary": True, "is_verified": True},
        "username": "ada",
        **extra,
    }


class FrozenClaimsTest(unittest.TestCase):
    def test_no_container_in_the_claims_can_be_changed(self) -> None:
        user = HankoUser.from_claims(hanko_claims(org={"teams": [{"name": "a", "tags": ["x"]}]}))
        claims: Any = user.claims
        org = claims["org"]
        team = org["teams"][0]
        changes = [
            lambda: claims.__setitem__("sub", "someone-else"),
            lambda: claims.__delitem__("exp"),
            lambda: claims.update(sub="someone-else"),
            lambda: claims.setdefault("admin", True),
            lambda: claims.pop("exp"),
            lambda: claims.popitem(),
            lambda: claims.clear(),
            lambda: claims.__ior__({"admin": True}),
            lambda: claims["email"].__setitem__("is_verified", False),
            lambda: claims["amr"].append("pwd"),
            lambda: org["teams"].append({"name": "admins"}),
            lambda: team.__setitem__("name", "admins"),
            lambda: team["tags"].append("admin"),
        ]
        for index, change in enumerate(changes):
            with self.subTest(change=index), self.assertRaises((TypeError, AttributeError)):
                change()
        self.assertEqual(user, HankoUser.from_claims(hanko_claims(org={"teams": [{"name": "a", "tags": ["x"]}]})))

    def test_the_callers_dict_is_not_shared(self) -> None:
        claims = hanko_claims(roles=["reader"])
        user = HankoUser.from_claims(claims)
        claims["roles"].append("admin")
        claims["email"]["address"] = "mallory@example.com"
        self.assertEqual((user.claims["roles"], user.email), (("reader",), "ada@example.com"))

    def test_attributes_read_the_frozen_claims(self) -> None:
        user = HankoUser.from_claims(hanko_claims())
        self.assertEqual(user.id, "aaaaaaaa-0000-4000-8000-000000000021")
        self.assertEqual(user.session_id, "5e551011-0000-4000-8000-000000000021")
        self.assertEqual((user.email, user.email_verified, user.username), ("ada@example.com", True, "ada"))
        self.assertEqual(user.amr, ("passkey", "mfa"))
        self.assertEqual(user.expires_at.timestamp(), user.claims["exp"])

    def test_hashable_and_equal_by_value(self) -> None:
        claims = hanko_claims(org={"teams": [{"name": "a"}]})
        user, same = HankoUser.from_claims(claims), HankoUser.from_claims(copy.deepcopy(claims))
        other = HankoUser.from_claims(hanko_claims(org={"teams": [{"name": "b"}]}))
        self.assertEqual(user, same)
        self.assertEqual(hash(user), hash(same))
        self.assertNotEqual(user, other)
        self.assertEqual(len({user, same, other}), 2)
        self.assertEqual(
            user.claims, claims | {"aud": ("localhost",), "amr": ("passkey", "mfa"), "org": {"teams": ({"name": "a"},)}}
        )

    def test_copies_and_pickles_are_equal_and_frozen(self) -> None:
        user = HankoUser.from_claims(hanko_claims())
        for duplicate in (copy.copy(user), copy.deepcopy(user), pickle.loads(pickle.dumps(user))):
            self.assertEqual(duplicate, user)
            with self.assertRaises(TypeError):
                duplicate.claims["email"]["address"] = "mallory@example.com"  # type: ignore[index]

    def test_claims_are_written_as_json(self) -> None:
        claims = hanko_claims(org={"teams": [{"name": "a", "tags": ["x"]}], "n": 1.5, "none": None})
        user = HankoUser.from_claims(claims)
        self.assertEqual(json.loads(json.dumps(user.claims)), claims)
        self.assertEqual(json.loads(tornado.escape.json_encode({"claims": user.claims})), {"claims": claims})
