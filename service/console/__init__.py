"""The web console: pages for people, served by the control plane at ``/``.

Pages are rendered here from the same services the API routes call; the browser
holds a session (an HttpOnly cookie, see ``session``), never a token it can read.
"""
