"""authIds of the device API as sealed tokens (core/device_challenges.py): what they carry, what opens
them, and what does not."""

from __future__ import annotations

import os
import re

import pytest

from totpadmin.core.device_challenges import (ACTIVATION, AUTHENTICATION, AuthIds, auth_hash, device_tag)
from totpadmin.core.errors import ChallengeGone, UnknownChallenge
from totpadmin.core.keyring import KeyRing

NOW = 1_800_000_000.0
TAG = device_tag("phone")


def ring(*ids: str) -> KeyRing:
    return KeyRing(active_id=ids[0], keys={key_id: KEYS[key_id] for key_id in ids})


KEYS = {"k1": os.urandom(32), "k2": os.urandom(32)}


def auth_ids(current: KeyRing | None = None, lifetime: int = 300) -> AuthIds:
    holder = {"ring": current or ring("k1")}
    ids = AuthIds(lambda: holder["ring"], lifetime)
    ids.holder = holder  # the test swaps the ring as a key rotation would
    return ids


def test_an_authid_names_its_kind_user_and_device_and_expires_after_its_lifetime():
    ids = auth_ids()
    auth_id = ids.issue(AUTHENTICATION, "shop-app", 42, 7, TAG, NOW)
    assert re.fullmatch(r"[A-Za-z0-9_-]{90,110}", auth_id), "URL-safe, no padding, about 100 characters"
    challenge = ids.open(auth_id, AUTHENTICATION, "shop-app", NOW + 299)
    assert (challenge.kind, challenge.user_id, challenge.device_id, challenge.device_tag) == (AUTHENTICATION, 42, 7, TAG)
    assert challenge.auth_hash == auth_hash(auth_id)
    assert challenge.expires_at == NOW + 300
    with pytest.raises(ChallengeGone) as gone:
        ids.open(auth_id, AUTHENTICATION, "shop-app", NOW + 300)
    assert gone.value.spent is False


def test_the_primary_device_without_a_row_is_device_none_and_each_authid_is_new():
    ids = auth_ids()
    first = ids.issue(ACTIVATION, "shop-app", 42, None, TAG, NOW)
    second = ids.issue(ACTIVATION, "shop-app", 42, None, TAG, NOW)
    assert first != second and auth_hash(first) != auth_hash(second)
    assert ids.open(first, ACTIVATION, "shop-app", NOW).device_id is None


def test_another_application_another_kind_or_a_changed_token_is_unknown():
    ids = auth_ids()
    auth_id = ids.issue(AUTHENTICATION, "shop-app", 42, 7, TAG, NOW)
    for client, kind in (("other-app", AUTHENTICATION), ("shop-app", ACTIVATION)):
        with pytest.raises(UnknownChallenge):
            ids.open(auth_id, kind, client, NOW)
    flipped = auth_id[:40] + ("A" if auth_id[40] != "A" else "B") + auth_id[41:]
    for bad in (flipped, auth_id[:-2], auth_id + "AA", "0063f27c-787b-4046-8b8e-a75e241b5ea6", "", "é" * 10,
                "A" * 5000, None, 7, ["x"]):
        with pytest.raises(UnknownChallenge):
            ids.open(bad, AUTHENTICATION, "shop-app", NOW)
    assert auth_ids().open(auth_id, AUTHENTICATION, "shop-app", NOW).user_id == 42, "any instance with the key file"


def test_authids_outlive_a_key_rotation_while_their_key_is_in_the_file():
    ids = auth_ids(ring("k1"))
    before = ids.issue(AUTHENTICATION, "shop-app", 42, 7, TAG, NOW)
    ids.holder["ring"] = ring("k2", "k1")  # rotated: k2 active, k1 kept for what it sealed
    after = ids.issue(AUTHENTICATION, "shop-app", 42, 7, TAG, NOW)
    assert ids.open(before, AUTHENTICATION, "shop-app", NOW).user_id == 42
    assert ids.open(after, AUTHENTICATION, "shop-app", NOW).user_id == 42
    ids.holder["ring"] = ring("k2")  # k1 removed from the file
    with pytest.raises(UnknownChallenge):
        ids.open(before, AUTHENTICATION, "shop-app", NOW)
    assert auth_ids(ring("k1")).open(before, AUTHENTICATION, "shop-app", NOW).user_id == 42


def test_a_devices_tag_changes_with_its_name_and_for_the_rowless_primary_with_its_sealed_secret():
    assert device_tag("phone") != device_tag("tablet")
    assert device_tag("default", "sealed-1") != device_tag("default", "sealed-2")
    assert device_tag("default", "sealed-1") == device_tag("default", "sealed-1")
