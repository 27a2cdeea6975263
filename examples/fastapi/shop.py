"""A FastAPI app with the shapes of a real shop API, to take a real OpenAPI document from.

`make openapi-testdata` runs it (Debian's python3-fastapi) and writes the document FastAPI serves at /openapi.json
into the routelatency component's test data, where the route tests read it.
"""
import json
import sys
from uuid import UUID

from fastapi import FastAPI

app = FastAPI(title="shop", version="1.0.0")


@app.get("/items/featured")
def featured(): return []


@app.get("/items/{item_id}")
def read_item(item_id: int): return {"item_id": item_id}


@app.put("/items/{item_id}")
def update_item(item_id: int): return {"item_id": item_id}


@app.get("/users/{user_id}/orders/{order_id}")
def read_order(user_id: UUID, order_id: int): return {}


@app.post("/checkout")
def checkout(): return {}


@app.get("/files/{file_path:path}")
def read_file(file_path: str): return {"file_path": file_path}


@app.get("/health")
def health(): return {"ok": True}


if __name__ == "__main__":
    json.dump(app.openapi(), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
