"""The WSO2 claim URIs under which a user's TOTP state is kept."""

SECRET_KEY = "http://wso2.org/claims/identity/secretkey"
ENCODING = "http://wso2.org/claims/identity/encoding"
QR_CODE_URL = "http://wso2.org/claims/identity/qrcodeurl"
TOTP_ENABLED = "http://wso2.org/claims/identity/totpEnabled"
VERIFY_SECRET_KEY = "http://wso2.org/claims/identity/verifySecretkey"

# Claims whose value reveals the shared secret: stored only encrypted.
SENSITIVE = frozenset({SECRET_KEY, QR_CODE_URL, VERIFY_SECRET_KEY})
