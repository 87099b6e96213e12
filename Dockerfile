# Production image for web, workers and beat (see docker-compose.yml).
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package*.json ./
RUN if [ -f package-lock.json ]; then npm ci; fi
COPY frontend/ ./
RUN if [ -f package.json ]; then npm run build; fi

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_ENV=production
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
COPY --from=frontend /src/frontend/dist ./frontend/dist
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-runtime-secret-0123456789abcdef python manage.py collectstatic --no-input
RUN useradd --create-home aicell && mkdir -p /data && chown aicell /data
USER aicell
EXPOSE 8000
CMD ["gunicorn", "aicell.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4", "--timeout", "120"]
