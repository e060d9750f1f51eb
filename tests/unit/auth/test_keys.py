"""API keys against a real database, SQLite and PostgreSQL: format, hashing, scope, revocation, last use."""

import pytest

from flashml.auth.keys import KeyService
from flashml.auth.tokens import hash_token, parse_token
from flashml.db.engine import open_database
from flashml.errors import BadRequestError, UnauthorizedError
from tests.helpers.postgres import rows


@pytest.fixture()
def keys(db_target, runner):
    engine = runner.run(open_database(db_target))
    yield KeyService(engine), runner
    runner.run(engine.dispose())


def test_key_is_prefixed_random_and_stored_only_as_hash(keys):
    svc, loop = keys
    a = loop.run(svc.create(name="a", role="inference", models=None, actor="t"))
    b = loop.run(svc.create(name="b", role="inference", models=None, actor="t"))
    assert a.token.startswith("fml_") and a.token != b.token and len(a.token) > 50
    assert parse_token(a.token) == a.key_id
    stored = loop.run(rows(svc.engine, "select secret_hash from api_keys"))
    dump = "\n".join(r[0] for r in stored)
    assert a.token not in dump and hash_token(a.token) in dump


def test_authenticate_scope_and_revoke(keys):
    svc, loop = keys

    async def go():
        k = await svc.create(name="only-m1", role="inference", models=["m1"], actor="t")
        p = await svc.authenticate(f"Bearer {k.token}")
        assert p.may_infer("m1") and not p.may_infer("m2") and not p.is_admin
        await svc.revoke(k.id, actor="t")
        with pytest.raises(UnauthorizedError) as err:
            await svc.authenticate(f"Bearer {k.token}")
        assert err.value.code == "revoked_key"

    loop.run(go())


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "Bearer fml_nothex_x",
                                    "Bearer fml_0123456789ab_" + "A" * 43])
def test_bad_headers_are_401(keys, header):
    svc, loop = keys
    with pytest.raises(UnauthorizedError):
        loop.run(svc.authenticate(header))


def test_last_used_is_recorded(keys):
    svc, loop = keys

    async def go():
        k = await svc.create(name="k", role="admin", models=None, actor="t")
        await svc.authenticate(f"Bearer {k.token}")
        await svc.flush()
        return k

    k = loop.run(go())
    [(used,)] = loop.run(rows(svc.engine, "select last_used_at from api_keys where id = :id", id=k.id))
    assert used is not None


def test_bad_role_and_admin_scope_are_refused(keys):
    svc, loop = keys
    with pytest.raises(BadRequestError):
        loop.run(svc.create(name="x", role="root", models=None, actor="t"))
    with pytest.raises(BadRequestError):
        loop.run(svc.create(name="x", role="admin", models=["m"], actor="t"))
