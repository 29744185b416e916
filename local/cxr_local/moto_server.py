"""moto's server with a faster TransactWriteItems rollback: `python -m cxr_local.moto_server -H HOST -p PORT`.

Stock moto deep-copies every touched TABLE, once per item of a transaction, so that it can roll back: the cost
grows with the table (an 8-item transaction: 27 ms on an empty table, ~300 ms at 1,000 items), and the local stack
slowed down the longer it ran. Here only the touched ITEMS are snapshotted and restored; the semantics (all or
nothing, conditions, cancellation reasons) are moto's own, checked by tests/integration/test_moto_server.py."""
import copy
import sys

import moto.dynamodb.models as models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table


class _NoTableCopy:
    """moto.dynamodb.models' `copy`: deepcopy of a whole Table becomes the identity (we snapshot items instead)."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _snapshot(backend, transact_items):
    saved = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue
        key = op.get("Item") or op.get("Key") or {}
        if table.hash_key_attr not in key:
            continue
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr and table.range_key_attr in key else None
        try:
            current = table.get_item(hash_value, range_value)
        except Exception:  # noqa: BLE001 - moto validates later and raises the proper error
            current = None
        saved.append((table, hash_value, range_value, copy.deepcopy(current) if current is not None else None))
    return saved


def _restore(saved):
    for table, hash_value, range_value, old in reversed(saved):
        if range_value is not None:
            bucket = table.items[hash_value]
            if old is None:
                bucket.pop(range_value, None)
            else:
                bucket[range_value] = old
        elif old is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = old


_original = models.DynamoDBBackend.transact_write_items


def transact_write_items(self, transact_items):
    saved = _snapshot(self, transact_items)
    try:
        return _original(self, transact_items)
    except Exception:
        _restore(saved)
        raise


def install():
    models.copy = _NoTableCopy
    models.DynamoDBBackend.transact_write_items = transact_write_items


if __name__ == "__main__":
    install()
    from moto.server import main
    sys.exit(main(sys.argv[1:]))
