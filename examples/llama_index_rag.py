"""LlamaIndex RAG over a folder indexed by ``tasb index``: open, ask, cite the sources.

Runs offline: the LLM is LlamaIndex's ``MockLLM`` (it echoes the prompt it was given), so the
answer shows what a real LLM would have been asked. Swap in any LlamaIndex LLM; nothing else
changes. The embedding model is TAS-B, or the directory in ``$TASB_MODEL``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from llama_index.core import VectorStoreIndex
from llama_index.core.llms import MockLLM

from langchain_tasb import TasbEmbeddings
from langchain_tasb.llama_index import TasbLlamaEmbedding, TasbLlamaVectorStore

NOTES = {
    "population.md": "Around 9 Million people live in London.",
    "finance.md": "London is known for its financial district, the City.",
    "transport.md": "The Underground carries about five million passengers a day.",
}
QUESTION = "How many people live in London?"

# 1. A folder of notes, indexed by the CLI (`tasb index notes --db tasb_db ...`).
folder = Path("notes")
folder.mkdir(exist_ok=True)
for name, text in NOTES.items():
    (folder / name).write_text(text + "\n", encoding="utf-8")
tasb = [sys.executable, "-m", "langchain_tasb.cli"]  # the `tasb` command
index_folder = [*tasb, "index", str(folder), "--db", "tasb_db", "--collection", "notes"]
subprocess.run(index_folder, check=True)  # noqa: S603  (our own command, fixed arguments)

# 2. The same collection as a LlamaIndex vector store; queries are embedded by its model.
embeddings = TasbEmbeddings()
store = TasbLlamaVectorStore(
    collection_name="notes",
    persist_directory="tasb_db",
    embedding=embeddings,
    create_collection_if_not_exists=False,  # a typo in the name fails instead of creating
)
index = VectorStoreIndex.from_vector_store(
    store, embed_model=TasbLlamaEmbedding(embeddings=embeddings)
)

# 3. Ask, and show what the answer was built from: dot product and calibrated relevance.
engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=2)
response = engine.query(QUESTION)
print(f"Q: {QUESTION}\nA: {str(response).strip()}\nsources:")
for source in response.source_nodes:
    meta = source.node.metadata
    print(f"{source.score:8.3f}  {meta['relevance']:.3f}  {meta['source']}")
