import { settings } from "./settings.js";

/** The configuration table as Markdown (README.md shows exactly this). */
export function configTableMarkdown(): string {
  const rows = Object.values(settings).map((s) => {
    const names = [`\`${s.env}\``, ...(s.aliases ?? []).map((a) => `\`${a}\``)].join(", alias ");
    return `| ${names} | \`--${s.flag}\` | ${s.description.replace(/\|/g, "\\|")} | ${s.defaultText} |`;
  });
  return ["| variable | flag | meaning | default |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
