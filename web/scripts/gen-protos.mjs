// Generates the TypeScript messages and service descriptors (Connect-ES) of every contract in
// ../protos into src/gen/, with the project's own protoc (grpc_tools from the Python environment)
// and protoc-gen-es from node_modules. Run by `npm run build` (and by the Makefile).
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, rmSync, mkdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const root = resolve(web, "..");
const protos = join(root, "protos");
const out = join(web, "src", "gen");
const python = process.env.PYTHON ?? join(root, ".venv", "bin", "python");
const plugin = join(web, "node_modules", ".bin", "protoc-gen-es");

function protoFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return protoFiles(path);
    return name.endsWith(".proto") ? [relative(protos, path)] : [];
  });
}

// Where the Python packages keep google/api/*.proto and the well-known types.
const includes = execFileSync(python, ["-c", [
  "import google.api, grpc_tools, os",
  "print(os.path.dirname(os.path.dirname(google.api.__path__[0])))",
  "print(os.path.join(grpc_tools.__path__[0], '_proto'))",
].join("; ")], { encoding: "utf8" }).trim().split("\n");

if (!existsSync(plugin)) throw new Error(`${plugin} missing: run npm ci in web/`);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// The google.api files the contracts import are generated too; the well-known types come from
// @bufbuild/protobuf/wkt.
const files = [
  ...protoFiles(protos).filter((f) => !f.includes("/partners/")).sort(),
  "google/api/annotations.proto", "google/api/http.proto", "google/api/field_behavior.proto",
  "google/api/httpbody.proto",
];
execFileSync(python, [
  "-m", "grpc_tools.protoc", `-I${protos}`, ...includes.map((i) => `-I${i}`),
  `--plugin=protoc-gen-es=${plugin}`, `--es_out=${out}`, "--es_opt=target=ts,import_extension=none",
  ...files,
], { stdio: "inherit" });
console.log(`generated ${files.length} contracts into ${relative(web, out)}/`);
