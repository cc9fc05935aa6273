# judgeq: one image for every fleet role (workers, Flower, migrations, CI submits).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY judgeq ./judgeq
COPY cli ./cli
COPY scheduler ./scheduler
COPY workers ./workers
COPY judges ./judges
COPY ledger ./ledger
COPY online ./online
COPY runs ./runs
RUN python -m venv /opt/judgeq \
 && /opt/judgeq/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 judgeq
COPY --from=build /opt/judgeq /opt/judgeq
ENV PATH="/opt/judgeq/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    JUDGEQ_CONFIG=/etc/judgeq/judgeq.toml
COPY judgeq.toml /etc/judgeq/judgeq.toml
USER judgeq
WORKDIR /home/judgeq
ENTRYPOINT ["judgeq"]
CMD ["--help"]
