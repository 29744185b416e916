"""moto made fast enough to sit under a load test, without changing what it answers.

- TransactWriteItems: stock moto deep-copies every touched TABLE, once per item of a transaction, to be able to
  roll back; the cost grows with the table (an 8-item transaction: 27 ms on an empty table, ~300 ms at 1,000
  items). Here only the touched ITEMS are snapshotted and restored; all-or-nothing, conditions and cancellation
  reasons stay moto's own (tests/integration/test_moto_server.py).
- SQS: every SendMessage and every received message computed all queue attributes, each a pass over the whole
  backlog reading the clock through datetime arithmetic per message; the clock is now time.time() (same value,
  freezegun patches both) and the retention check reads the one attribute it needs.
- Request dispatch: the host -> service lookup and the handler's method list are memoised.
- DynamoDB isolation: moto applies a transaction item by item with no lock, so two requests on two server
  threads could interleave (two racing conditional creates both won once the GIL switched often). DynamoDB
  requests now run one at a time, as DynamoDB's own serialisation of conflicting writes would have them.
- DynamoDB expressions: an update expression is parsed once per distinct text (the validators work on a deep
  copy of the tree), and the AST walkers stop rebuilding their node-type table at every node they visit.
- DynamoDB responses: moto's generic serializer walks every AttributeValue member by member (ten members, each
  looked up under several spellings): two thirds of a GetItem's CPU. An attribute value already in its JSON wire
  form (strings, numbers, booleans, nulls, maps, lists, string sets) is passed through as it is; anything else
  (binary values) takes moto's own path (tests/unit/test_moto_patches.py compares the two).
- S3 CORS preflight: a browser's OPTIONS before a presigned PUT carries the URL's query string, whose signature
  was made for the PUT; S3 answers a preflight from the bucket's CORS rules without authenticating it, moto checked
  the signature and answered 403. The query string is dropped for preflights (a fix of behaviour, not speed).
"""
import copy
import functools
import threading
import time

import moto.core.responses as moto_responses
import moto.core.utils as moto_utils
import moto.dynamodb.models as models
import moto.dynamodb.parsing.ast_nodes as ast_nodes
import moto.dynamodb.responses as dynamo_responses
import moto.sqs.models as sqs_models
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs.models import SQSBackend


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


def _unix_time(dt=None):
    return time.time() if dt is None else moto_utils.unix_time(dt)


def _unix_time_millis(dt=None):
    return _unix_time(dt) * 1000.0


def _message_within_retention(self, queue_name, message):
    """SQSBackend.is_message_valid_based_on_retention_period without computing every queue attribute (three
    passes over the whole backlog per received message in moto 5.2)."""
    retention_period = self.get_queue(queue_name).message_retention_period
    return retention_period + message.sent_timestamp / 1000 > _unix_time()


_original_backend_for_host = DomainDispatcherApplication.get_backend_for_host


def _backend_for_host(self, host):
    """Memoised: moto matches every request's host against ~150 service modules and URL patterns."""
    cache = self.__dict__.setdefault("_backend_by_host", {})
    if host not in cache:
        cache[host] = _original_backend_for_host(self, host)
    return cache[host]


def _processing_table(traverser):
    table = traverser.__dict__.get("_node_types")
    if table is None:
        table = traverser.__dict__["_node_types"] = traverser._processing_map()
    return table


def _nodes_to_be_processed(self):
    return tuple(_processing_table(self))


def _process(self, node):
    for class_key, processor in _processing_table(self).items():
        if isinstance(node, class_key):
            return processor(node)


def _memoised_update_parser(parser):
    """UpdateExpressionParser with `make` memoised by expression text; moto never mutates the tree it returns
    (UpdateExpressionValidator deep-copies it before processing, the responses only search it)."""
    make = functools.lru_cache(maxsize=512)(parser.make)
    return type(parser.__name__, (parser,), {"make": staticmethod(make)})


_dynamodb_lock = threading.RLock()
_original_dynamodb_call_action = dynamo_responses.DynamoHandler.call_action


def _dynamodb_call_action(self):
    with _dynamodb_lock:
        return _original_dynamodb_call_action(self)


_WIRE_SCALARS = {"S": str, "N": str, "BOOL": bool, "NULL": bool}


def in_wire_form(value) -> bool:
    """True for an AttributeValue that the JSON protocol sends exactly as it is (no blobs: those get encoded)."""
    if type(value) is not dict or len(value) != 1:
        return False
    (kind, inner), = value.items()
    scalar = _WIRE_SCALARS.get(kind)
    if scalar is not None:
        return type(inner) is scalar
    if kind == "M":
        return type(inner) is dict and all(in_wire_form(member) for member in inner.values())
    if kind == "L":
        return type(inner) is list and all(in_wire_form(member) for member in inner)
    if kind in ("SS", "NS"):
        return type(inner) is list and all(type(member) is str for member in inner)
    return False


_original_serialize_structure = BaseJSONSerializer._serialize_type_structure


def serialize_structure(self, serialized, value, shape, key):
    if key and shape.name == "AttributeValue" and in_wire_form(value):
        serialized[self.get_serialized_name(shape, key)] = value
        return
    _original_serialize_structure(self, serialized, value, shape, key)


def _preflight_unsigned(call):
    @functools.wraps(call)
    def wrapper(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            environ = {**environ, "QUERY_STRING": ""}
        return call(self, environ, start_response)
    return wrapper


def install():
    models.copy = _NoTableCopy
    models.DynamoDBBackend.transact_write_items = transact_write_items
    sqs_models.unix_time, sqs_models.unix_time_millis = _unix_time, _unix_time_millis
    sqs_models.camelcase_to_underscores = functools.lru_cache(maxsize=None)(moto_utils.camelcase_to_underscores)
    SQSBackend.is_message_valid_based_on_retention_period = _message_within_retention
    DomainDispatcherApplication.get_backend_for_host = _backend_for_host
    DomainDispatcherApplication.__call__ = _preflight_unsigned(DomainDispatcherApplication.__call__)
    moto_responses.method_names_from_class = functools.lru_cache(maxsize=None)(moto_utils.method_names_from_class)
    dynamo_responses.DynamoHandler.call_action = _dynamodb_call_action
    ast_nodes.DepthFirstTraverser.nodes_to_be_processed = _nodes_to_be_processed
    ast_nodes.DepthFirstTraverser.process = _process
    BaseJSONSerializer._serialize_type_structure = serialize_structure
    parser = _memoised_update_parser(models.UpdateExpressionParser)
    models.UpdateExpressionParser = dynamo_responses.UpdateExpressionParser = parser

