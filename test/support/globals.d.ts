// In tests, response bodies are read as untyped JSON and checked with expect().
declare global {
  interface Response {
    json(): Promise<any>;
  }
}
export {};
