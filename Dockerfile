# The chatbot service: `chatbot serve` on port 5000, serving the model store mounted at /models.
# How to build, run and deploy it: docs/deploy.md.
#
# One stage: every dependency is a wheel (nothing is compiled), so a build stage would leave nothing behind that
# this one keeps, except the project's sources (about 0.5 MB).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The CPU build of torch, exactly as pyproject.toml pins it for Linux x86-64 (tests/test_deploy.py checks the two
# agree). It is on PyTorch's own index only; PyPI's torch of the same version is the multi-GB CUDA build. A layer of
# its own, so that a change to the code does not download it again.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu "torch==2.13.0+cpu"

# Only what the package build reads (.dockerignore keeps the rest out of the context anyway).
COPY pyproject.toml README.md /src/
COPY training /src/training
COPY app /src/app
COPY chatbot /src/chatbot
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu /src \
    && rm -rf /src

# A fixed numeric id: Kubernetes' runAsNonRoot can only verify a numeric USER. The store is created here, owned by
# that user, so that a new named Docker volume mounted on it starts out writable by `chatbot publish`.
RUN groupadd --system --gid 10001 chatbot \
    && useradd --system --uid 10001 --gid chatbot --home-dir /home/chatbot --create-home \
        --shell /usr/sbin/nologin chatbot \
    && mkdir /models \
    && chown chatbot:chatbot /models
VOLUME ["/models"]
WORKDIR /home/chatbot
USER 10001:10001

# `chatbot serve --store` loads the model named by the store's current.json, and so do publish, rollback and models.
ENV CHATBOT_STORE=/models
EXPOSE 5000

# slim has no curl: Python's urllib, which raises (exit 1) on anything but a 2xx answer or on a timeout.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/api/health', timeout=4)"]

# Any other command runs in place of `serve`: `docker run IMAGE publish FILE`, `docker run IMAGE models`, ...
ENTRYPOINT ["chatbot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "5000", "--poll", "30"]
