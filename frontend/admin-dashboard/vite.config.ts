import { defineConfig } from "vite";
import { appConfig } from "../shared/vite.ts";

export default defineConfig(appConfig(5174));
