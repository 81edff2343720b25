"""The core: cloud, SSH, the guide's setup, Jupyter and the orchestration of them all. Never imports Textual."""
