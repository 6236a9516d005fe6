// Starts the app. Lives in its own file so the page's CSP needs no 'unsafe-inline':
// Trunk writes the hashed names of the wasm-bindgen module and the wasm into data attributes.
const tag = document.querySelector('script[data-wasm][data-js]');
const base = document.baseURI;
const { default: init } = await import(new URL(tag.dataset.js, base).href);
await init({ module_or_path: new URL(tag.dataset.wasm, base) });
