"""Everything between a device and the database: broker, consumer, payload decoding, batch writer."""
