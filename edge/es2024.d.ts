/** ES2024 string methods (Node 20, workerd); tsconfig's lib is ES2023. */
interface String {
  isWellFormed(): boolean;
  toWellFormed(): string;
}
