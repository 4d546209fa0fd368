import type { CodegenConfig } from "@graphql-codegen/cli";

// Types come from the committed schema of the service; `npm run codegen:check` fails when
// src/gql/ no longer matches it or the operations stop validating against it.
const config: CodegenConfig = {
  schema: "../schema.graphql",
  documents: "src/graphql/*.graphql",
  generates: {
    "src/gql/graphql.ts": {
      plugins: ["typescript-operations", "typed-document-node"],
      config: {
        strictScalars: true,
        scalars: { DateTime: "string", JSON: "Record<string, unknown>" },
        enumType: "string-literal",
        useTypeImports: true,
      },
    },
  },
};

export default config;
