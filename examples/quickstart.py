"""Quickstart: index two sentences and retrieve with dot-product scores (README's example)."""

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore

emb = TasbEmbeddings()  # TAS-B, or the model directory in $TASB_MODEL
store = TasbVectorStore(embedding=emb, collection_name="docs", persist_directory="./tasb_db")
store.add_texts(
    [
        "Around 9 Million people live in London",
        "London is known for its financial district",
    ]
)
retriever = store.as_retriever(search_kwargs={"k": 2})
for doc in retriever.invoke("How many people live in London?"):
    print(f"{doc.metadata['score']:8.3f}  {doc.metadata['relevance']:.3f}  {doc.page_content}")

# Later, in another process: open the same collection with no other code.
retriever = TasbRetriever(collection_name="docs", persist_directory="./tasb_db", k=1)
print(retriever.invoke("financial district")[0].page_content)
