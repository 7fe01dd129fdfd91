"""totpadmin.config: conf/totp.properties and conf/carbon.xml into typed settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from totpadmin.config import CarbonSettings, ConfigError, TotpSettings
from totpadmin.config.carbon import load_carbon_xml
from totpadmin.config.properties import load_totp_properties

CONF = Path(__file__).resolve().parents[2] / "conf"
NS = "http://wso2.org/projects/carbon/carbon.xml"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- totp.properties ---


def test_repo_totp_properties_gives_the_defaults():
    settings = load_totp_properties(CONF / "totp.properties")
    assert settings.encoding == "Base32"
    assert settings.time_step == 30
    assert settings.window_size == 3
    assert settings.mandatory is False
    assert settings.chunked_base64 is True
    assert settings.secret_bytes == 20
    assert settings.issuer is None
    assert settings.use_common_issuer is False
    assert settings == TotpSettings()


def test_empty_file_gives_the_defaults(tmp_path):
    assert load_totp_properties(write(tmp_path, "totp.properties", "")) == TotpSettings()


def test_every_key_is_read(tmp_path):
    path = write(
        tmp_path,
        "totp.properties",
        "encodingMethod=Base64\n"
        "timeStepSize=60\n"
        "windowSize=5\n"
        "enableTOTP=true\n"
        "Issuer=WSO2\n"
        "UseCommonIssuer=true\n"
        "secretKeyLength=32\n"
        "chunkedBase64=false\n",
    )
    assert load_totp_properties(path) == TotpSettings(
        encoding="Base64",
        time_step=60,
        window_size=5,
        mandatory=True,
        issuer="WSO2",
        use_common_issuer=True,
        secret_bytes=32,
        chunked_base64=False,
    )


def test_throttle_and_proxy_keys_are_read(tmp_path):
    path = write(tmp_path, "totp.properties",
                 "loginAccountFailuresPerDay=50\nloginKnownGoodSeconds=0\n"
                 "trustedProxies = 127.0.0.1, 10.0.0.0/8 ,2001:db8::/32,::1\ntrustedProxyHeader=forwarded\n")
    settings = load_totp_properties(path)
    assert settings.login_account_failures_per_day == 50
    assert settings.login_known_good_seconds == 0
    assert [str(n) for n in settings.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "2001:db8::/32", "::1/128"]
    assert settings.trusted_proxy_header == "Forwarded"
    assert TotpSettings().trusted_proxies == ()  # nobody's header is believed unless configured


def test_access_token_lifetime_is_read(tmp_path):
    assert load_totp_properties(write(tmp_path, "totp.properties", "accessTokenSeconds=60\n")).access_token_seconds == 60
    assert TotpSettings().access_token_seconds == 3600


def test_java_properties_syntax(tmp_path):
    path = write(
        tmp_path,
        "totp.properties",
        "# a hash comment\n"
        "! a bang comment\n"
        "#windowSize=9\n"
        "!secretKeyLength=99\n"
        "encodingMethod : Base64\n"
        "timeStepSize=6\\\n"
        "    0\n"
        "windowSize   5\n"
        "Issuer = My\\\n"
        "         Company\n"
        "enableTOTP=TRUE\n",
    )
    settings = load_totp_properties(path)
    assert settings.encoding == "Base64"
    assert settings.time_step == 60
    assert settings.window_size == 5
    assert settings.issuer == "MyCompany"
    assert settings.mandatory is True
    assert settings.secret_bytes == 20  # the commented-out line was ignored


def test_unicode_escapes_and_utf8(tmp_path):
    path = write(tmp_path, "totp.properties", "Issuer=\\u0057SO2 \u00e9\n")
    assert load_totp_properties(path).issuer == "WSO2 é"


@pytest.mark.parametrize(
    "line, key, value",
    [
        ("encodingMethod=Base16", "encodingMethod", "Base16"),
        ("encodingMethod=base32", "encodingMethod", "base32"),
        ("timeStepSize=abc", "timeStepSize", "abc"),
        ("timeStepSize=0", "timeStepSize", "0"),
        ("timeStepSize=3601", "timeStepSize", "3601"),
        ("windowSize=-1", "windowSize", "-1"),
        ("windowSize=0", "windowSize", "0"),
        ("enableTOTP=yes", "enableTOTP", "yes"),
        ("chunkedBase64=1", "chunkedBase64", "1"),
        ("UseCommonIssuer=maybe", "UseCommonIssuer", "maybe"),
        ("secretKeyLength=8", "secretKeyLength", "8"),
        ("secretKeyLength=65", "secretKeyLength", "65"),
        ("foo=bar", "foo", "bar"),
        ("loginAccountFailuresPerDay=101", "loginAccountFailuresPerDay", "101"),  # NIST SP 800-63B 5.2.2
        ("loginAccountFailuresPerDay=0", "loginAccountFailuresPerDay", "0"),
        ("loginKnownGoodSeconds=-1", "loginKnownGoodSeconds", "-1"),
        ("trustedProxies=proxy.example.org", "trustedProxies", "proxy.example.org"),
        ("trustedProxies=10.0.0.1, 10.0.0.0/33", "trustedProxies", "10.0.0.1, 10.0.0.0/33"),
        ("trustedProxies=10.0.0.1/8", "trustedProxies", "10.0.0.1/8"),  # host bits set: a typo?
        ("trustedProxies=[::1]", "trustedProxies", "[::1]"),
        ("trustedProxyHeader=X-Real-IP", "trustedProxyHeader", "X-Real-IP"),
        ("accessTokenSeconds=0", "accessTokenSeconds", "0"),
        ("accessTokenSeconds=86401", "accessTokenSeconds", "86401"),
        ("accessTokenSeconds=1h", "accessTokenSeconds", "1h"),
    ],
)
def test_bad_value_names_file_key_and_value(tmp_path, line, key, value):
    path = write(tmp_path, "totp.properties", f"enableTOTP=false\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_totp_properties(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert value in message
    assert info.value.key == key
    assert info.value.value == value
    assert info.value.source == str(path)


def test_common_issuer_without_issuer_is_an_error(tmp_path):
    path = write(tmp_path, "totp.properties", "UseCommonIssuer=true\n")
    with pytest.raises(ConfigError) as info:
        load_totp_properties(path)
    message = str(info.value)
    assert str(path) in message
    assert "UseCommonIssuer" in message
    assert "true" in message
    assert "Issuer" in message


def test_common_issuer_with_blank_issuer_is_an_error(tmp_path):
    path = write(tmp_path, "totp.properties", "UseCommonIssuer=true\nIssuer=   \n")
    with pytest.raises(ConfigError):
        load_totp_properties(path)


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nowhere" / "totp.properties"
    with pytest.raises(ConfigError) as info:
        load_totp_properties(path)
    assert str(path) in str(info.value)


def test_directory_instead_of_file_is_a_config_error(tmp_path):
    path = tmp_path / "totp.properties"
    path.mkdir()
    with pytest.raises(ConfigError) as info:
        load_totp_properties(path)
    assert str(path) in str(info.value)


# --- carbon.xml ---


def carbon_xml(*, name="WSO2 Identity Server", offset="0", hide="true", email="false", extra="") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Server xmlns="{NS}">\n'
        f"  <Name>{name}</Name>\n"
        f"  <Ports><Offset>{offset}</Offset></Ports>\n"
        f"  <HideAdminServiceWSDLs>{hide}</HideAdminServiceWSDLs>\n"
        f"  <EnableEmailUserName>{email}</EnableEmailUserName>\n"
        f"  {extra}\n"
        "</Server>\n"
    )


def test_repo_carbon_xml():
    settings = load_carbon_xml(CONF / "carbon.xml")
    assert settings.hide_wsdl is True
    assert settings.port_offset == 0
    assert settings.https_port == 9443
    assert settings.server_name == "WSO2 Identity Server"
    assert settings.host_name is None
    assert settings.email_usernames is False


def test_carbon_xml_show_wsdl(tmp_path):
    settings = load_carbon_xml(write(tmp_path, "carbon.xml", carbon_xml(hide="false")))
    assert settings.hide_wsdl is False


def test_carbon_xml_offset_moves_the_port(tmp_path):
    settings = load_carbon_xml(write(tmp_path, "carbon.xml", carbon_xml(offset="1")))
    assert settings.port_offset == 1
    assert settings.https_port == 9444


def test_carbon_xml_name_host_and_email(tmp_path):
    path = write(
        tmp_path, "carbon.xml", carbon_xml(name="My IS", email="true", extra="<HostName>is.example.com</HostName>")
    )
    settings = load_carbon_xml(path)
    assert settings == CarbonSettings(
        server_name="My IS", host_name="is.example.com", port_offset=0, hide_wsdl=True, email_usernames=True
    )


def test_carbon_xml_without_namespace_and_without_elements_gives_defaults(tmp_path):
    assert load_carbon_xml(write(tmp_path, "carbon.xml", "<Server/>")) == CarbonSettings()


@pytest.mark.parametrize("offset", ["x", "-1", "1.5"])
def test_carbon_xml_bad_offset(tmp_path, offset):
    path = write(tmp_path, "carbon.xml", carbon_xml(offset=offset))
    with pytest.raises(ConfigError) as info:
        load_carbon_xml(path)
    message = str(info.value)
    assert str(path) in message
    assert "Ports/Offset" in message
    assert repr(offset) in message
    assert info.value.key == "Ports/Offset"


def test_carbon_xml_bad_boolean(tmp_path):
    path = write(tmp_path, "carbon.xml", carbon_xml(hide="nope"))
    with pytest.raises(ConfigError) as info:
        load_carbon_xml(path)
    assert "HideAdminServiceWSDLs" in str(info.value) and "nope" in str(info.value)


def test_carbon_xml_bad_host_name(tmp_path):
    path = write(tmp_path, "carbon.xml", carbon_xml(extra="<HostName>evil.com/x?y</HostName>"))
    with pytest.raises(ConfigError) as info:
        load_carbon_xml(path)
    assert "HostName" in str(info.value)


@pytest.mark.parametrize("text", ["<Server><Name>x</Server>", "", "not xml at all", "<Server>&undefined;</Server>"])
def test_malformed_carbon_xml_names_the_file(tmp_path, text):
    path = write(tmp_path, "carbon.xml", text)
    with pytest.raises(ConfigError) as info:
        load_carbon_xml(path)
    assert str(path) in str(info.value)


def test_missing_carbon_xml_names_the_file(tmp_path):
    path = tmp_path / "carbon.xml"
    with pytest.raises(ConfigError) as info:
        load_carbon_xml(path)
    assert str(path) in str(info.value)


def test_carbon_xml_does_not_expand_external_entities(tmp_path):
    marker = write(tmp_path, "secret.txt", "7")
    leak = write(tmp_path, "leak.txt", "LEAKED-FILE-CONTENT")
    path = write(
        tmp_path,
        "carbon.xml",
        '<?xml version="1.0"?>\n'
        "<!DOCTYPE Server [\n"
        f'  <!ENTITY offset SYSTEM "{marker.as_uri()}">\n'
        f'  <!ENTITY leak SYSTEM "{leak.as_uri()}">\n'
        "]>\n"
        f'<Server xmlns="{NS}"><Name>&leak;</Name><Ports><Offset>&offset;</Offset></Ports></Server>\n',
    )
    try:
        settings = load_carbon_xml(path)
    except ConfigError as exc:  # refusing the document outright is fine too
        assert "LEAKED-FILE-CONTENT" not in str(exc)
        return
    assert "LEAKED-FILE-CONTENT" not in settings.server_name
    assert settings.port_offset == 0  # would be 7 had the entity been read
    assert settings.https_port == 9443


def test_carbon_xml_does_not_expand_internal_entities(tmp_path):
    # A "billion laughs" document must not blow up; entities are left unexpanded.
    entities = '<!ENTITY a "ha">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)
    )
    path = write(
        tmp_path,
        "carbon.xml",
        f'<?xml version="1.0"?><!DOCTYPE Server [{entities}]><Server><Name>&i;</Name></Server>',
    )
    try:
        settings = load_carbon_xml(path)
    except ConfigError:
        return
    assert "haha" not in settings.server_name
    assert len(settings.server_name) < 1000
