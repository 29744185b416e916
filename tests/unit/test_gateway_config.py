"""Gateway settings: file, then CXR_GATEWAY_* environment, then the command line; destinations; local stack flags."""
import json

import pytest

from cxr_gateway.config import Destination, GatewayConfig, load
from cxr_local.__main__ import parse_args


def test_file_then_environment_then_overrides(tmp_path):
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps({"ae_title": "FROM_FILE", "dicom_port": 104, "allowed_aets": ["A"],
                                "store_ttl_hours": 1.5}))
    environ = {"CXR_GATEWAY_DICOM_PORT": "11113", "CXR_GATEWAY_ALLOWED_AETS": "A, B",
               "CXR_GATEWAY_ALLOW_STAND_IN": "true", "CXR_GATEWAY_DESTINATION_HEADERS": '{"x-api-key": "k"}'}
    config = load(path, environ, overrides={"ae_title": "FROM_CLI", "http_port": None})
    assert (config.ae_title, config.dicom_port, config.allowed_aets) == ("FROM_CLI", 11113, ["A", "B"])
    assert config.allow_stand_in is True and config.store_ttl_hours == 1.5 and config.http_port == 8044
    assert config.destination_headers == {"x-api-key": "k"}
    toml = tmp_path / "gateway.toml"
    toml.write_text('ae_title = "TOML_AE"\nallowed_aets = ["X"]\n')
    assert load(toml, {}).ae_title == "TOML_AE"
    (tmp_path / "bad.json").write_text('{"no_such_setting": 1}')
    with pytest.raises(ValueError, match="no_such_setting"):
        load(tmp_path / "bad.json", {})


@pytest.mark.parametrize("text, expected", [
    ("ORTHANC@127.0.0.1:4242", Destination(ae_title="ORTHANC", host="127.0.0.1", port=4242)),
    ("PACS@[::1]:104", Destination(ae_title="PACS", host="::1", port=104)),
    ("http://orthanc:8042/dicom-web/studies/", Destination(url="http://orthanc:8042/dicom-web/studies")),
])
def test_destinations(text, expected):
    assert Destination.parse(text) == expected


@pytest.mark.parametrize("config, message", [
    (GatewayConfig(), "no calling AE title"),
    (GatewayConfig(allowed_aets=["A"], destination="nowhere"), "AE_TITLE@HOST:PORT"),
    (GatewayConfig(allowed_aets=["A"], tls_cert="c.pem"), "tls_cert and tls_key"),
    (GatewayConfig(allowed_aets=["A"], allowed_networks=["10.0.0.0/33"]), "10.0.0.0/33"),
    (GatewayConfig(allowed_aets=["A"], destination="https://pacs/studies", destination_tls=True), "https://"),
    (GatewayConfig(allowed_aets=["A"], destination_tls_ca="ca.pem"), "C-STORE destination"),
])
def test_invalid_settings_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_the_local_stack_gateway_flags():
    assert parse_args([]).gateway is None
    options = parse_args(["--gateway", "--gateway-destination", "ORTHANC@127.0.0.1:4242", "--gateway-allow", "A",
                          "--gateway-allow", "B", "--gateway-allow-stand-in", "--gateway-dicom-port", "0"]).gateway
    assert options.destination == "ORTHANC@127.0.0.1:4242" and options.allowed_aets == ["A", "B"]
    assert options.allow_stand_in is True and options.dicom_port == 0
    assert parse_args(["--gateway"]).gateway.allowed_aets == ["ORTHANC"]
    assert parse_args(["--gateway"]).gateway.send_heatmaps == 0  # off by default
    assert parse_args(["--gateway", "--gateway-send-heatmaps"]).gateway.send_heatmaps == 3
    assert parse_args(["--gateway", "--gateway-send-heatmaps", "5"]).gateway.send_heatmaps == 5


def test_the_destination_tls_flags():
    from cxr_gateway.__main__ import parse_args as gateway_args

    config = gateway_args(["--allow", "A", "--destination", "PACS@pacs.example:2762", "--destination-tls-ca", "ca.pem"])
    assert (config.destination_tls, config.destination_tls_ca) == (False, "ca.pem")  # the CA alone turns TLS on
    assert gateway_args(["--allow", "A", "--destination", "PACS@h:1", "--destination-tls"]).destination_tls is True


def test_heatmaps_are_off_unless_asked():
    from cxr_gateway.__main__ import parse_args as gateway_args

    assert gateway_args(["--allow", "A"]).send_heatmaps == 0
    assert gateway_args(["--allow", "A", "--send-heatmaps"]).send_heatmaps == 3
    assert gateway_args(["--allow", "A", "--send-heatmaps", "2"]).send_heatmaps == 2
