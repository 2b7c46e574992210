"""Transfer layer: planning parts, the CurlMulti engine, retries, resume records."""
