// Starts Swagger UI on /openapi.json; a file of its own because the page's policy allows no inline script.
window.addEventListener('DOMContentLoaded', () => {
  window.SwaggerUIBundle({ url: '/openapi.json', dom_id: '#api-reference', deepLinking: true });
});
