# The sf_pipeline code location: a gRPC server the webserver and daemon connect to, and the image
# every run container (Docker) or run pod (Kubernetes) starts from. Builds from the repo alone:
#
#   docker build -t registry.example/sf-pipeline:1.0 \
#       --build-arg IMAGE=registry.example/sf-pipeline:1.0 .
#
# IMAGE is the name the image is pushed under: the code server reports it to Dagster
# (DAGSTER_CURRENT_IMAGE), and DockerRunLauncher / K8sRunLauncher start each run from it.
FROM python:3.11-slim

ARG IMAGE=sf-pipeline:latest
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    SF_PIPELINE_HOME=/var/lib/sf_pipeline \
    DAGSTER_CURRENT_IMAGE=${IMAGE}

WORKDIR /opt/sf_pipeline
COPY pyproject.toml README.md ./
COPY sf_pipeline ./sf_pipeline
# The deploy extra brings the run launchers (dagster-docker, dagster-k8s): a run container loads
# the instance, launcher included, from the instance settings Dagster hands it.
RUN pip install '.[deploy]' \
    && useradd --create-home --uid 10001 sfpipeline \
    && mkdir -p "$DAGSTER_HOME" "$SF_PIPELINE_HOME" \
    && chown sfpipeline "$DAGSTER_HOME" "$SF_PIPELINE_HOME"

USER sfpipeline
EXPOSE 4000
CMD ["dagster", "api", "grpc", "--module-name", "sf_pipeline.definitions", "--attribute", "defs", "--host", "0.0.0.0", "--port", "4000", "--location-name", "sf_pipeline"]
