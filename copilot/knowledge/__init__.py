"""The knowledge pack and document ingestion: the "dataset" half of the paradigm."""
