export { checkContract, contractProblems, ModelContractError } from './contract.ts';
export type { Dim, ModelContract, TensorContract } from './contract.ts';
export { createSessionFactory, cudaAvailable } from './session.ts';
export type { OnnxDevice, OnnxProvider, SessionFactory, SessionFactoryOptions } from './session.ts';
