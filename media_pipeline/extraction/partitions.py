import uuid

import dagster as dg

# One partition per extraction request (a batch of videos); its items are processed inside the run.
extraction_batches = dg.DynamicPartitionsDefinition(name="extraction_batches")


def new_batch_id() -> str:
    return f"ex_{uuid.uuid4().hex[:16]}"
