"""The self-service pages, rendered on the server (Jinja2 templates in ``templates/``, a style sheet and
one small script in ``static/``, nothing from elsewhere): sign-in with its second step, the first-login
enrollment, MyAccount > Security and sign-out. Each page is a route of the same table as the JSON APIs
and calls the same use cases (operations/sessions.py, operations/my_account.py)."""
