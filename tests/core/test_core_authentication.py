"""totpadmin.core.authentication.Authenticator over the real SQL store, and its CredentialCache."""

from __future__ import annotations

import pytest

from totpadmin.core.authentication import Authenticator, CacheState
from totpadmin.core.credential_cache import CredentialCache
from totpadmin.core.errors import AuthenticationFailed
from totpadmin.core.passwords import PasswordHasher
from totpadmin.core.principal import Principal
from totpadmin.core.usernames import UserRef
from totpadmin.store.database import Database

ALICE = UserRef("carbon.super", "alice")
BOB = UserRef("abc.com", "bob")


class CountingHasher(PasswordHasher):
    """The real Argon2id hasher, counting how often a hash is checked."""

    def __init__(self):
        super().__init__(time_cost=1, memory_cost=8192, parallelism=1)
        self.verify_calls = 0

    def verify(self, password_hash: str, password: str) -> bool:
        self.verify_calls += 1
        return super().verify(password_hash, password)


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def db(tmp_path, hasher):
    database = Database(f"sqlite:///{tmp_path}/t.db")
    database.create_schema()
    with database.transaction() as unit:
        unit.users.ensure_tenant("carbon.super")
        unit.users.ensure_tenant("abc.com")
        unit.users.add_user(ALICE, hasher.hash("pw"), "admin")
        unit.users.add_user(BOB, hasher.hash("bob-pw"), "user")
    hasher.verify_calls = 0
    yield database
    database.dispose()


@pytest.fixture
def cache() -> CredentialCache:
    return CredentialCache(ttl=60.0)


@pytest.fixture
def auth(hasher, cache) -> Authenticator:
    return Authenticator(hasher, cache)


def login(db: Database, auth: Authenticator, username: str, password: str) -> Principal:
    """As the server logs in: a cached login confirmed against the store, else the stored login read
    and the password checked outside the transaction."""
    hit = auth.cached(username, password)
    if hit is not None:
        with db.transaction() as unit:
            if auth.confirm(unit.users, hit):
                return hit.principal
        auth.forget(username, password)
    with db.transaction() as unit:
        record = auth.find(unit.users, username)
    return auth.check(record, username, password)


def user_id(db: Database, ref: UserRef) -> int:
    with db.transaction() as unit:
        return unit.users.find_login(ref).user_id


def test_right_password_gives_principal(db, auth):
    principal = login(db, auth, "alice", "pw")
    assert principal == Principal(user_id=user_id(db, ALICE), ref=ALICE, role="admin")
    assert principal.is_admin and principal.is_super_admin


def test_tenant_user_gives_principal(db, auth):
    principal = login(db, auth, "bob@ABC.com", "bob-pw")
    assert principal.ref == BOB
    assert principal.role == "user"
    assert not principal.is_admin and not principal.is_super_admin


@pytest.mark.parametrize(
    "username, password",
    [
        ("alice", "wrong"),
        ("alice", ""),
        ("alice", "PW"),
        ("alice@abc.com", "pw"),  # right name, wrong tenant
        ("bob", "bob-pw"),  # bob is not in the super tenant
        ("mallory", "pw"),
        ("alice@nowhere.example", "pw"),
        ("", "pw"),
        ("@abc.com", "pw"),
        ("bob@", "pw"),
        ("al\x00ice", "pw"),
        ("a" * 300, "pw"),
    ],
)
def test_failures_all_say_the_same(db, auth, username, password):
    with pytest.raises(AuthenticationFailed) as info:
        login(db, auth, username, password)
    assert str(info.value) == "Access Denied. Authentication failed - Invalid credentials provided."
    assert password == "" or password not in str(info.value)


@pytest.mark.parametrize("username", ["mallory", "@abc.com", "alice@nowhere.example"])
def test_unknown_users_still_cost_one_hash_check(db, auth, hasher, username):
    with pytest.raises(AuthenticationFailed):
        login(db, auth, username, "pw")
    assert hasher.verify_calls == 1


def test_second_login_is_served_from_the_cache(db, auth, hasher):
    first = login(db, auth, "alice", "pw")
    assert hasher.verify_calls == 1
    second = login(db, auth, "alice", "pw")
    assert second == first
    assert hasher.verify_calls == 1


def test_failed_login_is_not_cached(db, auth, hasher):
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            login(db, auth, "alice", "wrong")
    assert hasher.verify_calls == 2


def test_cache_entry_does_not_serve_another_password(db, auth):
    login(db, auth, "alice", "pw")
    with pytest.raises(AuthenticationFailed):
        login(db, auth, "alice", "pw2")


def test_password_change_invalidates_the_cached_login(db, auth, hasher):
    login(db, auth, "alice", "pw")
    with db.transaction() as unit:
        unit.users.set_password(ALICE, hasher.hash("new-pw"))
    hasher.verify_calls = 0
    with pytest.raises(AuthenticationFailed):
        login(db, auth, "alice", "pw")
    assert hasher.verify_calls == 1  # the stale entry was not trusted: the new hash was checked
    assert login(db, auth, "alice", "new-pw").ref == ALICE


def test_password_change_seen_by_another_process_cache(db, hasher):
    # Two servers, each with its own cache, sharing one database.
    server_a = Authenticator(hasher, CredentialCache())
    server_b = Authenticator(hasher, CredentialCache())
    login(db, server_a, "alice", "pw")
    login(db, server_b, "alice", "pw")
    with db.transaction() as unit:
        unit.users.set_password(ALICE, hasher.hash("new-pw"))
    for server in (server_a, server_b):
        with pytest.raises(AuthenticationFailed):
            login(db, server, "alice", "pw")


def test_removed_user_cannot_log_in_from_the_cache(db, auth, hasher):
    login(db, auth, "alice", "pw")
    with db.transaction() as unit:
        unit.users.add_user(UserRef(ALICE.tenant, "chief"), hasher.hash("pw"), "admin")  # carbon.super keeps one
        unit.users.remove_user(ALICE)
    with pytest.raises(AuthenticationFailed):
        login(db, auth, "alice", "pw")


def test_role_change_is_seen_despite_the_cache(db, auth, hasher):
    # The cache remembers who, not what they may do: the role comes from the database each time.
    assert login(db, auth, "bob@abc.com", "bob-pw").role == "user"
    with db.transaction() as unit:
        unit.users.remove_user(BOB)
        unit.users.add_user(BOB, hasher.hash("bob-pw"), "admin")
    assert login(db, auth, "bob@abc.com", "bob-pw").role == "admin"


def test_deleted_users_cached_password_does_not_log_in_as_the_next_user(db, auth, hasher):
    bob_id = login(db, auth, "bob@abc.com", "bob-pw").user_id
    with db.transaction() as unit:
        unit.users.remove_user(BOB)
        unit.users.add_user(UserRef("abc.com", "carol"), hasher.hash("carol-pw"), "admin")
    assert user_id(db, UserRef("abc.com", "carol")) != bob_id  # ids are never reused (AUTOINCREMENT)
    with pytest.raises(AuthenticationFailed):
        login(db, auth, "bob@abc.com", "bob-pw")


def test_recreated_user_old_cached_password_fails(db, auth, hasher):
    login(db, auth, "bob@abc.com", "bob-pw")
    with db.transaction() as unit:
        unit.users.remove_user(BOB)
        unit.users.add_user(BOB, hasher.hash("brand-new-pw"), "user")
    with pytest.raises(AuthenticationFailed):
        login(db, auth, "bob@abc.com", "bob-pw")


def test_email_usernames_mode(tmp_path, hasher):
    db = Database(f"sqlite:///{tmp_path}/e.db")
    db.create_schema()
    with db.transaction() as unit:
        unit.users.ensure_tenant("carbon.super")
        unit.users.add_user(UserRef("carbon.super", "bob@gmail.com"), hasher.hash("pw"), "user")
    auth = Authenticator(hasher, CredentialCache(), email_usernames=True)
    assert login(db, auth, "bob@gmail.com", "pw").ref == UserRef("carbon.super", "bob@gmail.com")
    with pytest.raises(AuthenticationFailed):
        login(db, Authenticator(hasher, CredentialCache()), "bob@gmail.com", "pw")
    db.dispose()


# --- CredentialCache on its own ---


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_cache_hit_and_miss():
    cache = CredentialCache()
    assert cache.get("alice", "pw") is None
    cache.put("alice", "pw", 7, "$argon2id$hash")
    hit = cache.get("alice", "pw")
    assert (hit.user_id, hit.password_hash) == (7, "$argon2id$hash")
    assert cache.get("alice", "pw2") is None
    assert cache.get("alice2", "pw") is None


def test_cache_keys_do_not_collide_on_concatenation():
    cache = CredentialCache()
    cache.put("ab", "c", 1, "hash")
    assert cache.get("a", "bc") is None
    assert cache.get("abc", "") is None


def test_cache_discard():
    cache = CredentialCache()
    cache.put("alice", "pw", 7, "hash")
    cache.discard("alice", "pw")
    assert cache.get("alice", "pw") is None
    cache.discard("alice", "pw")  # discarding a missing entry is harmless


def test_cache_ttl_expiry():
    clock = FakeClock()
    cache = CredentialCache(ttl=60.0, clock=clock)
    cache.put("alice", "pw", 7, "hash")
    clock.now += 59.9
    assert cache.get("alice", "pw").user_id == 7
    clock.now += 0.1
    assert cache.get("alice", "pw") is None
    clock.now -= 30  # once expired, the entry is gone for good
    assert cache.get("alice", "pw") is None


def test_cache_put_refreshes_expiry():
    clock = FakeClock()
    cache = CredentialCache(ttl=10.0, clock=clock)
    cache.put("alice", "pw", 7, "hash")
    clock.now += 8
    cache.put("alice", "pw", 7, "hash")
    clock.now += 8
    assert cache.get("alice", "pw") is not None


def test_expired_cache_entry_makes_authenticator_check_the_hash(db, hasher):
    clock = FakeClock()
    auth = Authenticator(hasher, CredentialCache(ttl=60.0, clock=clock))
    login(db, auth, "alice", "pw")
    login(db, auth, "alice", "pw")
    assert hasher.verify_calls == 1
    clock.now += 61
    login(db, auth, "alice", "pw")
    assert hasher.verify_calls == 2


def test_cache_evicts_oldest_beyond_max_entries():
    cache = CredentialCache(max_entries=2)
    cache.put("a", "pw", 1, "hash")
    cache.put("b", "pw", 2, "hash")
    cache.put("c", "pw", 3, "hash")
    assert cache.get("a", "pw") is None
    assert cache.get("b", "pw").user_id == 2
    assert cache.get("c", "pw").user_id == 3
    cache.put("b", "pw", 2, "hash")  # re-putting makes b the newest
    cache.put("d", "pw", 4, "hash")
    assert cache.get("c", "pw") is None
    assert cache.get("b", "pw").user_id == 2
    assert cache.get("d", "pw").user_id == 4


def test_cache_never_holds_the_password(db, auth, cache, hasher):
    password = "correct horse battery staple"
    with db.transaction() as unit:
        unit.users.set_password(ALICE, hasher.hash(password))
    login(db, auth, "alice", password)
    entries = cache._entries
    assert len(entries) == 1
    for key, entry in entries.items():
        assert isinstance(key, bytes) and len(key) == 32
        assert password.encode() not in key
        assert b"alice" not in key
        assert password not in repr(entry)
    assert password not in repr(vars(cache))


def test_an_entry_is_due_for_renewal_in_the_last_quarter_of_its_life():
    clock = FakeClock()
    cache = CredentialCache(ttl=60.0, clock=clock)
    cache.put("alice", "pw", 7, "hash")
    clock.now += 44.9
    assert not cache.renewal_due(cache.get("alice", "pw"))
    clock.now += 0.1
    assert cache.renewal_due(cache.get("alice", "pw"))
    cache.put("alice", "pw", 7, "hash")  # renewed: a whole life again
    assert not cache.renewal_due(cache.get("alice", "pw"))


def test_cache_state_and_login_key(db, hasher):
    clock = FakeClock()
    auth = Authenticator(hasher, CredentialCache(ttl=60.0, clock=clock))
    assert auth.cache_state("alice", "pw") is CacheState.MISSING
    login(db, auth, "alice", "pw")
    assert auth.cache_state("alice", "pw") is CacheState.CACHED
    assert auth.cache_state("alice", "other") is CacheState.MISSING
    clock.now += 50
    assert auth.cache_state("alice", "pw") is CacheState.RENEWAL_DUE
    clock.now += 10
    assert auth.cache_state("alice", "pw") is CacheState.MISSING
    key = auth.login_key("alice", "pw")
    assert key == auth.login_key("alice", "pw")
    assert len({key, auth.login_key("alice", "pw2"), auth.login_key("alic", "epw")}) == 3
    assert b"pw" not in key and key != Authenticator(hasher, CredentialCache()).login_key("alice", "pw")
