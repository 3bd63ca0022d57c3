"""The LangGraph Platform API family: threads and runs, with leased claims."""
