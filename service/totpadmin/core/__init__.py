"""Plain-Python domain logic: TOTP maths, secrets, claims, users, tenants, policy.

Nothing here imports spyne, twisted or SQLAlchemy; storage is reached through small protocols that
``totpadmin.store`` implements.
"""
