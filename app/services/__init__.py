"""Business rules. Services are the only writers (the ingest batch writer aside) and emit bus events after commit."""
