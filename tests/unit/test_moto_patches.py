"""The local moto's DynamoDB response fast path answers byte for byte what moto's own serializer answers."""
import base64
import json

import pytest
from moto.core.responses import get_service_model
from moto.core.serialize import BaseJSONSerializer, XFormedAttributePicker, get_serializer_class

from cxr_local import moto_patches

_SCORES = {f"Pathology {i}": {"N": f"0.{i:02d}5"} for i in range(18)}
_ITEMS = [
    {"job_id": {"S": "a"}, "status": {"S": "COMPLETED"}, "result": {"M": {"scores": {"M": _SCORES}}}},
    {"k": {"S": ""}, "flag": {"BOOL": False}, "on": {"BOOL": True}, "gone": {"NULL": True}, "n": {"N": "-1e3"}},
    {"k": {"S": "sets"}, "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2.5"]},
     "list": {"L": [{"S": "a"}, {"M": {"deep": {"L": [{"N": "1"}, {"NULL": True}]}}}, {"L": []}]}, "empty": {"M": {}}},
    {"k": {"S": "binary"}, "b": {"B": "AAEC"}, "bs": {"BS": ["AAEC", "AwQ="]}, "m": {"M": {"inner": {"B": "AAEC"}}}},
]


def _blobs_base64(value):
    """The attribute value with every blob (B, BS) base64-encoded, as boto's JSON serializer writes them."""
    if isinstance(value, dict):
        return {key: (base64.b64encode(inner.encode()).decode() if key == "B"
                      else [base64.b64encode(b.encode()).decode() for b in inner] if key == "BS"
                      else _blobs_base64(inner)) for key, inner in value.items()}
    if isinstance(value, list):
        return [_blobs_base64(inner) for inner in value]
    return value


def _serialize(operation: str, result: dict, fast: bool, monkeypatch) -> dict:
    structure = moto_patches.serialize_structure if fast else moto_patches._original_serialize_structure
    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", structure)
    model = get_service_model("dynamodb").operation_model(operation)
    serializer = get_serializer_class("dynamodb", "json")(
        operation_model=model, pretty_print=False, value_picker=XFormedAttributePicker())
    return json.loads(serializer.serialize(result)["body"])


@pytest.mark.parametrize("item", _ITEMS)
def test_get_item_fast_path_matches_moto(item, monkeypatch):
    result = {"Item": item, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}}
    fast = _serialize("GetItem", result, True, monkeypatch)
    assert fast == _serialize("GetItem", result, False, monkeypatch)
    assert fast["Item"] == _blobs_base64(item)  # passed through, but blobs (B, BS) base64-encoded as moto's path does


def test_batch_get_and_query_fast_path_matches_moto(monkeypatch):
    batch = {"Responses": {"t": _ITEMS}, "UnprocessedKeys": {}}
    query = {"Items": _ITEMS, "Count": len(_ITEMS), "ScannedCount": len(_ITEMS), "LastEvaluatedKey": {"k": {"S": "z"}}}
    for operation, result in (("BatchGetItem", batch), ("Query", query), ("Scan", query)):
        assert _serialize(operation, result, True, monkeypatch) == _serialize(operation, result, False, monkeypatch)


def test_only_plain_wire_values_take_the_fast_path():
    assert moto_patches.in_wire_form({"M": {"a": {"L": [{"S": "x"}, {"BOOL": True}]}}})
    assert not moto_patches.in_wire_form({"B": "AAEC"})
    assert not moto_patches.in_wire_form({"M": {"a": {"BS": ["AAEC"]}}})
    assert not moto_patches.in_wire_form({"N": 3})  # a number that is not yet its wire string
    assert not moto_patches.in_wire_form({"S": "a", "N": "1"})
