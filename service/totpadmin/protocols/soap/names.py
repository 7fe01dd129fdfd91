"""Names on the wire, as Axis2 derives them from the Java package and class."""

TNS = "http://services.totp.authenticator.application.identity.carbon.wso2.org"
EXCEPTION_NS = "http://exception.totp.authenticator.application.identity.carbon.wso2.org/xsd"
SERVICE_NAME = "TOTPAdminService"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
