"""What each route answers, as pydantic models: ``/openapi.json`` documents every answer
from these, FastAPI checks each answer against its model (a route answering a field its
model lacks fails loudly, never silently), and the tests check answers against the spec."""
