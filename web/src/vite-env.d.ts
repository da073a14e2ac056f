// Imports Vite resolves at build time: `?url` gives a file's path in the build.
declare module "*?url" {
  const url: string;
  export default url;
}
