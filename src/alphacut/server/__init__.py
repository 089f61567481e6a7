"""The local web app: a FastAPI server (one process, the job engine inside) and its static UI.

``create_app(settings)`` builds the app; ``run.serve()`` binds loopback and opens the browser.
"""
